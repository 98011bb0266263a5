# configs/prometheus.yml as the NixOS host runs it: the committed file with its rule file made
# absolute and its loopback targets moved to the ports chosen in services.streamscout. Pure, so
# the tests check that the default ports give back the committed file unchanged but for the rule path.
{
  text, # contents of configs/prometheus.yml
  rulesFile, # absolute path of configs/prometheus/alert_rules.yml
  ports, # { prometheus, alertmanager, monitor, jobmanagerMetrics, taskmanagerMetrics, node, api }
}:
let
  # The ports configs/prometheus.yml names; replaceStrings rewrites them in one pass.
  committed = {
    prometheus = 9090;
    alertmanager = 9093;
    monitor = 9100;
    jobmanagerMetrics = 9249;
    taskmanagerMetrics = 9250;
    node = 9101;
    api = 8080;
  };
  names = builtins.attrNames committed;
  target = port: "\"127.0.0.1:${toString port}\"";
in
builtins.replaceStrings
  ([ "- prometheus/alert_rules.yml" ] ++ map (n: target committed.${n}) names)
  ([ "- ${rulesFile}" ] ++ map (n: target ports.${n}) names)
  text
