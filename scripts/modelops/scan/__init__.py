"""`modelops scan`: known vulnerabilities in the packages a model (or an image) ships, judged by a policy.

Engines (`safety`, `pip-audit`) sit behind one interface (`engines.Engine`) and return normalised
`Finding`s; `policy` decides which of them fail the scan; `report` prints the result.
"""
