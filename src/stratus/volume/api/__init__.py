"""The volume API's handlers, one module per resource."""
