"""The long-running agent: scheduler, leadership, HTTP endpoints, webhook and file drop."""
