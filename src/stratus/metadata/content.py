"""Kept only so that old imports still work: the renderer is
:mod:`stratus.contracts.metadata_tree` (the agent and this service both import it
from there). Remove once nothing imports ``stratus.metadata.content``."""

from stratus.contracts.metadata_tree import ec2_metadata, ec2_text, ec2_tree, render

__all__ = ["ec2_metadata", "ec2_text", "ec2_tree", "render"]
