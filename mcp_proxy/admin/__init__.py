"""The administrator's side: the inventory of tools users' proxies discovered, the policy operations over a
document (shared by `policy approve|disable|classify|toolset|profile` and the console), and `admin`, the local
review console (a loopback web server and its static page).

Place in the import order: just below `cli` (`cli → admin → server → ...`); it uses `policy`, `config`,
`catalog.offline` (the administrator's own catalog, for full definitions) and `fsutil`, and nothing imports it
but `cli`. Never on the `serve` path.
"""
