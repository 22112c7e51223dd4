"""Stage 2, generate: a Scenario -> a readable locustfile that imports the runtime.

`locustfile` renders templates/locustfile.py.j2; `blocks` turns scenario steps into the plain
step objects of shop_loadtest.journeys that the locustfile spells out.
"""
