"""Judge: evidence -> verdict. The budget language (`budgets`), the statistics it can name
(`stats`, with the target-metric ones in `monitor_stats` and the runway projection in
`runway`), and the verdict rules (`verdict`). Nothing here writes a report.
"""
