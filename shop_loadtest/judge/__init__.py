"""The judge stage: the evidence a verdict is earned from (`evidence`, `delivery`).

The verdict rules themselves, a pure function from that evidence to (verdict, reasons), are
`decide` in the verdict module (report/verdict.py, moving to judge/verdict.py).
"""
