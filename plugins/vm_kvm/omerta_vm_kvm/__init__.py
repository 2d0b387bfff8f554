"""KVM/QEMU hypervisor backend through libvirt: ephemeral VMs that always get deleted (Omerta plugin `kvm`)."""

__version__ = "0.1.0"
