"""Component ids of the web app (one place, so pages and callbacks never disagree on a string)."""

# app shell
HEADER_USER = "hdr-user"

# sessions page
SESSIONS_SEARCH = "sessions-search"
SESSIONS_TABLE = "sessions-table"
SESSIONS_COUNT = "sessions-count"

# session page
SESSION_KEY_STORE = "session-key"  # {"sid": opaque id}: keys only, never arrays
SESSION_VIEW_STORE = "session-view"  # {"window": [start_s, end_s] | None}
SESSION_GRAPH = "session-graph"
SESSION_TRACES = "session-traces"
SESSION_CONFLICTS = "session-conflicts"
SESSION_EXPLANATION = "session-explanation"
