"""The two safety promises, each kept by one guard (docs/safety.md).

`hosts`: every outgoing request -- the load's, the health check's, the monitor's -- passes one
allowlist check, at the point where the connection is made, every redirect hop included.
`mask`: every output passes one secret mask (every encoding the runtime produces), before any
message is cut; `text` makes names and messages safe for terminals and XML.

Pure and free of Locust: the CLI process and the load processes import the same rule.
"""
