"""Compute drivers of the compute agent: the hypervisor behind a small interface.

``base`` holds the interface and the instance description, ``fake`` an in-memory
driver for unit tests, ``libvirt`` the real one (``virsh`` subprocesses),
``domain_xml`` renders the libvirt domain, ``imagecache`` the per-host image cache,
``configdrive`` the ISO9660 config drive.
"""
