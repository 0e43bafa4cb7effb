#!/bin/sh
# The load-balancing demo's answer: which task served this request, on which node, for which client.
# SHOAL_TASK_NAME and SHOAL_NODE_HOSTNAME are set by the agent in every task's environment.
echo "Content-Type: text/plain"
echo ""
echo "task=${SHOAL_TASK_NAME:-$(hostname)} node=${SHOAL_NODE_HOSTNAME:-unknown} client=${REMOTE_ADDR:-?}"
