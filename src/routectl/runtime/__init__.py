"""The runtime: serves OpenAI-compatible requests from a frozen RoutingTable."""
