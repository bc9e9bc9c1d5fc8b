"""Pages of the web app: one module per page (``dash.register_page``); they hold layout and thin callbacks only.

``sessions`` (/), ``session`` (/session/<id>), ``agreement`` (/agreement/<id>: modality agreement), ``patient``
(/patient/<id>: a patient's timeline) and ``triage`` (/triage); they call functions of `fusionlab.app._data`,
`_clinical`, `_agreement`, `_norms` and `_profiles`.
"""
