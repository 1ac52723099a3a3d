"""Pull-request review tools: effect diffs, explain, simulate and routing tests.

Nothing here is imported by `routectl serve`; the runtime only imports `review.explain` lazily for
`POST /v1/route/explain`.
"""
