"""Judge: evidence -> verdict. The budget language (`budgets`), the statistics it can name
(`stats`, with the target-metric ones in `monitor_stats` and the runway projection in
`runway`), the evidence a verdict is earned from (`evidence`: the load process, workers,
target; `delivery`: planned against delivered load), the verdict rules (`verdict`, a pure
function from that evidence to (verdict, reasons)), and the load machine's health
(`machine`). Nothing here writes a report.
"""
