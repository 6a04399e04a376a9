"""Jobs: running one analysis request with its checks and quorum, and recovery after a restart."""
