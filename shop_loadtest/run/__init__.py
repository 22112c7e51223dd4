"""Run: drive Locust headless (local, multi-process, master/worker) in `runner`, scrape the
target's metrics in `monitor`, and show the run live in `live`. The runner is the orchestrator
of one run: it calls the later stages (abort rules, the final report) itself.
"""
