# NixOS VM test (checks.<system>.vm): boots a host with services.streamscout and the simulator,
# then checks what an operator would: every unit active, a clip row once the demo scenario's
# bursts come after the 5-minute baseline, the page answering, JSON lines in the monitor's journal.
{ module }:
{
  name = "streamscout";

  nodes.machine =
    { pkgs, ... }:
    {
      imports = [
        module
        ./demo-host.nix
      ];
      environment.systemPackages = [ pkgs.curl ];
      virtualisation = {
        memorySize = 6144;
        cores = 2;
        diskSize = 8192;
      };
    };

  testScript = ''
    import json

    start_all()
    machine.wait_for_unit("multi-user.target")

    with subtest("infrastructure and StreamScout units are active"):
        for unit in [
            "postgresql.service",
            "redis-streamscout.service",
            "apache-kafka.service",
            "prometheus.service",
            "alertmanager.service",
            "prometheus-node-exporter.service",
            "loki.service",
            "alloy.service",
            "grafana.service",
            "streamscout-sim.service",
            "streamscout-sim-seed-tokens.service",
            "streamscout-migrate.service",
            "streamscout-kafka-topics.service",
            "flink-jobmanager.service",
            "flink-taskmanager.service",
            "streamscout-monitor.service",
            "streamscout-api.service",
        ]:
            machine.wait_for_unit(unit, timeout=600)
        for port in [59092, 58081, 9100, 8080, 8900, 9090, 9093, 3000, 3100]:
            machine.wait_for_open_port(port, timeout=300)
        # The submitter retries until the cluster, Kafka and the tokens are ready.
        machine.wait_for_unit("streamscout-flink-submit.service", timeout=900)
        machine.wait_until_succeeds(
            "curl -sf http://127.0.0.1:58081/jobs/overview | grep -q RUNNING", timeout=300
        )

    with subtest("the token file is private to the service user"):
        machine.succeed("test \"$(stat -c '%U %a' /var/lib/streamscout/tokens.json)\" = 'streamscout 600'")

    with subtest("a clip row appears after the scenario's bursts"):
        # demo.yaml bursts from minute 5.5, after the detector's 5-minute baseline.
        machine.wait_until_succeeds(
            "sudo -u streamscout psql -d streamscout -tAc 'select count(*) from clips' | grep -qv '^0$'",
            timeout=1200,
        )

    with subtest("the page and the API answer"):
        machine.succeed("curl -sf http://127.0.0.1:8080/health")
        machine.succeed("curl -sf http://127.0.0.1:8080/ | grep -qi '<html'")
        clips = json.loads(machine.succeed("curl -sf 'http://127.0.0.1:8080/v1.0/clip?limit=10'"))
        assert clips, clips

    with subtest("the monitor logs JSON lines to the journal"):
        lines = machine.succeed("journalctl -u streamscout-monitor -o cat --no-pager -n 20").strip().splitlines()
        parsed = [json.loads(line) for line in lines if line.startswith("{")]
        assert parsed, lines
        assert all({"ts", "level", "logger", "message"} <= set(entry) for entry in parsed), parsed[:3]

    with subtest("Prometheus scrapes the monitor and both Flink reporters"):
        machine.wait_until_succeeds(
            "curl -sf 'http://127.0.0.1:9090/api/v1/query?query=up' | "
            + "grep -q stream-monitoring",
            timeout=120,
        )
  '';
}
