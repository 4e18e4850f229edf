//! The service files `mcp-gateway service` writes: the LaunchAgent plist
//! (checked with Python's plistlib, as launchd is not here) and the systemd units.

use std::process::Stdio;

use crate::common::*;

#[test]
fn the_launch_agent_plist_has_the_socket_and_absolute_paths() {
    let gw = TestGateway::new();
    let out = gw.command(DAEMON).args(["service", "plist"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let check = r#"
import plistlib, sys, json
p = plistlib.loads(sys.stdin.buffer.read())
print(json.dumps({
  "label": p["Label"], "program": p["ProgramArguments"],
  "socket": p["Sockets"]["gateway"]["SockPathName"], "mode": p["Sockets"]["gateway"]["SockPathMode"],
  "keepalive": p["KeepAlive"], "runatload": p.get("RunAtLoad"), "env": p["EnvironmentVariables"],
}))
"#;
    let mut python = std::process::Command::new("python3")
        .args(["-c", check])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(python.stdin.as_mut().unwrap(), &out.stdout).unwrap();
    let parsed = python.wait_with_output().unwrap();
    assert!(parsed.status.success(), "plistlib could not parse:\n{}", String::from_utf8_lossy(&out.stdout));
    let plist: serde_json::Value = serde_json::from_slice(&parsed.stdout).unwrap();
    assert_eq!(plist["label"], "com.mcp-gateway");
    assert_eq!(plist["program"], serde_json::json!([DAEMON, "serve"]));
    assert_eq!(plist["socket"], gw.socket.display().to_string());
    assert_eq!(plist["mode"], 384, "0600, written in decimal");
    assert_eq!(plist["keepalive"], serde_json::json!({"SuccessfulExit": false}));
    assert!(plist["runatload"].is_null(), "started on demand, not at load");
    assert_eq!(plist["env"]["MCP_GATEWAY_SOCKET"], gw.socket.display().to_string());
}

#[test]
fn service_install_writes_units_with_this_binary() {
    let gw = TestGateway::new();
    let out = gw
        .command(DAEMON)
        .args(["service", "install", "--dry-run"])
        .env("XDG_CONFIG_HOME", gw.dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("# {}/systemd/user/mcp-gateway.socket", gw.dir.path().display())), "{text}");
    assert!(text.contains(&format!("ExecStart={DAEMON} serve")), "{text}");
    assert!(text.contains("ListenStream=%t/mcp-gateway/gateway.sock") && text.contains("SocketMode=0600"), "{text}");
    assert!(text.contains("Type=notify") && text.contains("WatchdogSec=") && text.contains("KillMode=mixed"), "{text}");
    // The upgrade watch follows this binary too (a `cargo install` over it restarts the daemon).
    assert!(text.contains(&format!("# {}/systemd/user/mcp-gateway-upgrade.path", gw.dir.path().display())), "{text}");
    assert!(text.contains(&format!("PathChanged={DAEMON}\n")), "{text}");
    assert!(text.contains(&format!("ConditionPathExists={DAEMON}\n")), "{text}");
    assert!(!text.contains("/usr/bin/mcp-gateway"), "no packaged path left: {text}");
}
