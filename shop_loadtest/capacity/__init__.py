"""Capacity: find-capacity (`find`: step the load up until a budget breaks) and the test plan
from the funnel (`plan`). The runway projection that budgets use is in shop_loadtest.judge.
"""
