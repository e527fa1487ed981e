"""The namespace backend: network namespaces joined through TUN devices whose packets translab's own
forwarder reads, passes through link models, a NAT and a firewall, and writes out (mahimahi-style).

Pure parts: :mod:`.firewall` (rules), :mod:`.router` (where a packet goes, NAT and firewall applied),
:mod:`.names` (naming). I/O parts: :mod:`.system` (ip/netns commands, sockets inside a namespace),
:mod:`.tun`, :mod:`.forwarder` (the forwarding process), :mod:`.lab` (set-up and clean-up),
:mod:`.cleanup` (removing leftovers by name prefix).
"""
