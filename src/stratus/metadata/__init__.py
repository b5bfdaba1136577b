"""stratus-metadata: the cloud-init metadata service and the config-drive content renderer."""
