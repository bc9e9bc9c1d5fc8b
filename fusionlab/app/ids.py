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
SESSION_VIDEO_PANEL = "session-video"  # only when the session has a pose video whose file is found
SESSION_VIDEO_IMG = "session-video-img"
SESSION_VIDEO_CAPTION = "session-video-caption"
SESSION_CURSOR_STORE = "session-cursor"  # {"t": session time under the mouse}, written by assets/cursor.js
SESSION_LIVE_POLL = "session-live-poll"  # dcc.Interval: re-read a recording in progress (disabled otherwise)
SESSION_LIVE_STATUS = "session-live-status"  # "recording in progress ... last flush at ..."

# agreement page
AGREEMENT_PARAMETER = "agreement-parameter"
AGREEMENT_PLOTS = "agreement-plots"
AGREEMENT_KEY_STORE = "agreement-key"  # {"sid": opaque id}

# patient timeline page
PATIENT_KEY_STORE = "patient-key"  # {"pid": opaque id}
PATIENT_PROFILE = "patient-profile"
PATIENT_PROFILE_STATUS = "patient-profile-status"
PATIENT_VARIABLE = "patient-variable"
PATIENT_KINEMATICS = "patient-kinematics"

# triage page
TRIAGE_TABLE = "triage-table"

# sessions page: upload panel (clinician/admin) and the user's ingest jobs
UPLOAD_FILE = "upload-file"  # button: assets/upload.js opens a file picker and posts the file to /_fusionlab/upload
UPLOAD_TARGET = "upload-target"  # <select>: "new" or an opaque session id
UPLOAD_SUBJECT = "upload-subject"
UPLOAD_DATE = "upload-date"
UPLOAD_PROCESS = "upload-process"  # dcc.Checklist: detect events and fuse after the ingest
UPLOAD_BUTTON = "upload-button"
UPLOAD_STATUS = "upload-status"
UPLOAD_JOBS = "upload-jobs"
UPLOAD_POLL = "upload-poll"  # dcc.Interval
UPLOAD_SEEN_STORE = "upload-seen"  # ids of finished jobs already reflected in the sessions table
