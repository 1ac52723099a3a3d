"""The compiler: routing.yaml -> validated, frozen RoutingTable -> generated/ files."""
