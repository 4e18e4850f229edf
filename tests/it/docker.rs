//! Docker backends, with a stand-in `docker` (no Docker engine runs on this
//! project's machines): the exact command line, the environment passed by name
//! only, and the container stopped when the daemon stops.

use std::path::Path;

use crate::common::*;
use serde_json::{Value, json};

#[test]
fn a_docker_server_runs_with_the_expected_command_line_and_is_stopped_with_the_daemon() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut gw = TestGateway::new();
    let bin = gw.dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(manifest.join("tests/fixtures/docker-standin.py"), bin.join("docker")).unwrap();
    let log = gw.dir.path().join("docker.log");
    gw.write_config(
        "servers:\n  boxed:\n    type: docker\n    image: example/tool:1\n    args: [\"--verbose\"]\n    env: { API_TOKEN: \"${API_TOKEN}\" }\n    volumes: [\"/srv/data:/data:ro\"]\n    network: none\n",
    );
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    gw.daemon_env.extend([
        ("PATH".to_string(), path),
        ("API_TOKEN".to_string(), "tok-in-container".to_string()),
        ("DOCKER_STANDIN_LOG".to_string(), log.display().to_string()),
        ("DOCKER_STANDIN_STATE".to_string(), gw.dir.path().join("containers").display().to_string()),
        ("DOCKER_STANDIN_SERVER".to_string(), manifest.join("tests/fixtures/fixture_server.py").display().to_string()),
    ]);
    gw.start();
    let mut client = gw.client();
    client.initialize();
    assert_eq!(first_text(&client.call_tool(json!(1), "boxed__echo", json!({"message": "hi"}))), "example/tool:1: hi");
    assert_eq!(first_text(&client.call_tool(json!(2), "boxed__env", json!({"name": "API_TOKEN"}))), "tok-in-container");

    let calls = || -> Vec<Vec<String>> {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["argv"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a.as_str().unwrap().to_string())
                    .collect()
            })
            .collect()
    };
    let run = calls().into_iter().find(|c| c[0] == "run").expect("docker run");
    let name = run[4].clone();
    assert!(name.starts_with("mcp-gateway-boxed-"), "{run:?}");
    assert_eq!(
        run,
        [
            "run",
            "-i",
            "--rm",
            "--name",
            &name,
            "-e",
            "API_TOKEN",
            "-v",
            "/srv/data:/data:ro",
            "--network",
            "none",
            "example/tool:1",
            "--verbose"
        ]
    );
    assert!(
        !std::fs::read_to_string(&log).unwrap().contains("tok-in-container"),
        "the value never reaches a command line"
    );

    drop(client);
    assert!(gw.stop().success());
    assert!(calls().iter().any(|c| c[0] == "stop" && c.last() == Some(&name)), "docker stop {name}: {:?}", calls());
    assert!(wait_until(TIMEOUT, || gw.count("example/tool:1") == 0), "the container is gone: {:?}", gw.processes());
}
