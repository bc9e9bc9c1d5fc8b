"""Pages of the web app: one module per page (``dash.register_page``); they hold layout and thin callbacks only.

Planned (issue 6): ``compare`` (modality agreement), ``timeline`` (a patient's sessions over time) and ``triage``
(sessions by conflicts and data quality); each will be one module here, calling functions of `fusionlab.app._data`.
"""
