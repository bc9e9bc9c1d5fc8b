"""The fusionlab web app (Dash on Flask): sessions list and session page, behind a login.

Run it with ``fusionlab serve --data DIR`` (docs/app.md). Importing this package does not import Dash; the app is
built by `fusionlab.app.app.create_app`. Library functions the pages call live in `fusionlab.app._data` (figures,
downsampling, session index), `fusionlab.app._users` (users file, password hashes, roles) and
`fusionlab.app._audit` (audit log); none of them needs a browser or a web framework.
"""

from fusionlab.app._audit import audit, read_audit
from fusionlab.app._users import PERMISSIONS, ROLES, User, UserStore, can

__all__ = ["PERMISSIONS", "ROLES", "User", "UserStore", "audit", "can", "read_audit"]
