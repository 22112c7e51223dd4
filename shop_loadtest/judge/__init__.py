"""Judge: evidence -> verdict. The budget language (`budgets`), the statistics it can name
(`stats`, with the target-metric ones in `monitor_stats` and the runway projection in
`runway`), the verdict rules (`verdict`), and the load machine's health (`machine`). Nothing
here writes a report.
"""
