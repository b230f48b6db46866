"""Who may call the API. Today one optional server token (``tracelet server --token``); the teams issue
puts users, workspaces, roles and audit here behind the same dependency.
"""
