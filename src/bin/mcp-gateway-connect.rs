fn main() -> std::process::ExitCode {
    mcp_gateway::shim::main()
}
