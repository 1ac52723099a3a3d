"""Pull-request review tools: effect diffs, explain, simulate and routing tests.

They call the runtime's own rules (resolution, access, planning, failure bookkeeping) and never
restate them. The runtime never imports this package: `routectl serve` mounts the explain
endpoint (`review.explain_http.mount_explain`) on the app it composes.
"""
