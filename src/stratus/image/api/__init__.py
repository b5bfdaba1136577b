"""The image API's HTTP handlers, one module per resource (versions, images,
image data, tags, members); ``stratus.image.app`` binds their route tables to
one :class:`~stratus.image.core.ImageService`."""
