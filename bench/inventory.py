#!/usr/bin/env python3
"""A generated inventory of NODES nodes (bench_plan's shape, and
tests/unit/plan/demo.hpp's generated_inventory): a load balancer and a
client, then 3 masters, 10 % MongoDB, 10 % Elasticsearch and the rest
workers, addresses 10.x.y.z in node order. For bench/plan.sh, bench/coverage.sh
and tests/netns/check_many_agents.sh.

    inventory.py NODES > inventory.yaml
"""
import sys

n = int(sys.argv[1])
print("cluster: bench\nloadbalancer: {vip: 10.255.255.254}\nadmin_cidrs: [10.0.0.0/8]\nnodes:")
print("  - {name: lb1, address: 10.255.255.1, roles: [loadbalancer]}")
print("  - {name: client1, address: 10.255.255.2, roles: [client]}")
for i in range(n):
    role = "master" if i < 3 else "mongodb" if i % 10 == 3 else "elasticsearch" if i % 10 == 4 else "worker"
    print(f"  - {{name: n{i}, address: 10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}, roles: [{role}]}}")
