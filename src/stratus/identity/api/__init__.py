"""The identity API's HTTP handlers, one module per resource family (auth,
domains, projects, users, groups, roles, assignments, regions, services,
endpoints, application credentials, versions); ``stratus.identity.app`` binds
their route tables to one :class:`~stratus.identity.core.Identity`."""
