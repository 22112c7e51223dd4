"""Capacity: find-capacity (`find`: step the load up until a budget breaks), the test plan
from the funnel (`plan`), and production alert rules from what was measured (`alerts`). The
runway projection that budgets use is in shop_loadtest.judge.
"""
