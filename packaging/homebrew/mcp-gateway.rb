# Homebrew formula for mcp-gateway, built from source with cargo.
# Install from a checkout: brew install --build-from-source ./packaging/homebrew/mcp-gateway.rb
# (or copy it into a tap). packaging/README.md has the notes.
class McpGateway < Formula
  desc "Share one set of MCP servers between every AI client on this machine"
  # The tap's copy of this file is written by `scripts/release.sh VERSION`,
  # which fills in the url and sha256 of the release's own source tarball (a
  # formula cannot sit inside the tarball it names the digest of); here they
  # name the current version's tarball, and the digest is the release's to say.
  homepage "https://github.com/mcp-gateway/mcp-gateway"
  url "https://github.com/mcp-gateway/mcp-gateway/releases/download/v0.1.0/mcp-gateway-0.1.0.tar.gz"
  sha256 "0000000000000000000000000000000000000000000000000000000000000000"
  license any_of: ["MIT", "Apache-2.0"]

  depends_on "rust" => :build

  def install
    system "cargo", "install", *std_cargo_args

    # Generated from the clap definitions and committed (tests/it/manpages.rs keeps
    # them current), so no build step is needed for them.
    man1.install Dir["man/*.1"]
    # bash-completion loads a command's completion from a file named after it.
    bash_completion.install "completions/mcp-gateway.bash" => "mcp-gateway"
    bash_completion.install "completions/mcp-gateway-connect.bash" => "mcp-gateway-connect"
    zsh_completion.install "completions/_mcp-gateway", "completions/_mcp-gateway-connect"
    fish_completion.install "completions/mcp-gateway.fish", "completions/mcp-gateway-connect.fish"
  end

  # Homebrew services cannot hand over a Unix socket (`sockets` takes only
  # tcp/udp host:port), so this runs the daemon always-on, binding the socket
  # itself. For socket activation use `mcp-gateway service install` (caveats).
  service do
    run [opt_bin/"mcp-gateway", "serve"]
    keep_alive true
    # So that servers started with Homebrew's npx, uvx, ... are found.
    environment_variables PATH: std_service_path_env
    log_path var/"log/mcp-gateway.log"
    error_log_path var/"log/mcp-gateway.log"
  end

  def caveats
    <<~EOS
      Point your MCP clients at `mcp-gateway-connect`; it starts the daemon on
      first use when nothing is listening, so no service is required.

      `brew services start mcp-gateway` runs the daemon always-on: Homebrew
      services cannot pass a Unix socket to a program, so there is no socket
      activation that way. To have launchd own the socket and start the daemon
      on the first connect (macOS), run instead:
        mcp-gateway service install
      (systemd user units on Linux). Use one or the other, not both.
    EOS
  end

  test do
    assert_match "mcp-gateway #{version}", shell_output("#{bin}/mcp-gateway --version")
    assert_match "mcp-gateway-connect #{version}", shell_output("#{bin}/mcp-gateway-connect --version")
    (testpath/"config.yaml").write <<~YAML
      servers:
        echo:
          command: cat
    YAML
    assert_match "ok, 1 server(s)", shell_output("#{bin}/mcp-gateway config check #{testpath}/config.yaml")
  end
end
