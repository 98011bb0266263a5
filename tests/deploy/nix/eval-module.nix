# Evaluates nix/module.nix with nixpkgs' real module system (lib.evalModules from nixpkgs' lib/)
# but without nixpkgs' packages or NixOS modules, which this machine does not have: the NixOS
# options the module sets are declared here as free-form, and packages are stand-ins. What this
# checks for real: option declarations and types, defaults, mkIf/mkDefault merging, assertions,
# and the systemd units, environment and service settings the module produces.
{
  lib,
  settings ? { },
  # The host's modules; by default the StreamScout module with `settings`.
  modules ? [
    ../../../nix/module.nix
    { services.streamscout = settings; }
  ],
}:
let
  inherit (lib) mkOption types;
  inherit (import ./stub-pkgs.nix { inherit lib; }) drv pkgs freeform;

  stubs = {
    options = {
      assertions = mkOption {
        type = types.listOf types.unspecified;
        default = [ ];
      };
      users = freeform;
      environment = freeform;
      system = freeform;
      networking = freeform;
      boot = freeform;
      fileSystems = freeform;
      virtualisation = freeform;
      services = {
        postgresql = freeform;
        redis = freeform;
        prometheus = freeform;
        loki = freeform;
        alloy = freeform;
        grafana = freeform;
        apache-kafka = mkOption {
          type = types.submodule {
            freeformType = types.lazyAttrsOf types.anything;
            options.package = mkOption { default = drv "apache-kafka-4.1.2" { }; };
          };
          default = { };
        };
      };
      systemd = {
        tmpfiles.rules = mkOption {
          type = types.listOf types.str;
          default = [ ];
        };
        services = mkOption {
          type = types.attrsOf (types.submodule { freeformType = types.lazyAttrsOf types.anything; });
          default = { };
        };
      };
    };
  };

  evaluated = lib.evalModules {
    modules = modules ++ [ stubs ];
    specialArgs = { inherit pkgs; };
  };
  inherit (evaluated) config;
  units = config.systemd.services;
  pick = names: lib.filterAttrs (n: _: builtins.elem n names);
in
{
  failedAssertions = map (a: a.message) (builtins.filter (a: !a.assertion) config.assertions);
  unitNames = builtins.attrNames units;
  units = lib.mapAttrs (
    _: u:
    {
      after = u.after or [ ];
      requires = u.requires or [ ];
      wants = u.wants or [ ];
      environment = u.environment or { };
      script = u.script or null;
      description = u.description or "";
      path = map toString (u.path or [ ]);
      serviceConfig = u.serviceConfig or { };
    }
  ) (pick [
    "streamscout-monitor"
    "streamscout-api"
    "streamscout-migrate"
    "streamscout-kafka-topics"
    "streamscout-flink-submit"
    "streamscout-sim"
    "streamscout-sim-seed-tokens"
    "flink-jobmanager"
    "flink-taskmanager"
    "alertmanager"
  ] units);
  tmpfiles = config.systemd.tmpfiles.rules;
  adminScript = (lib.findFirst (p: p.name == "streamscout-admin") null config.environment.systemPackages).text;
  kafka = config.services.apache-kafka.settings;
  postgresql = {
    inherit (config.services.postgresql) ensureDatabases ensureUsers;
  };
  redis = config.services.redis.servers;
  prometheusConfig = config.services.prometheus.configText;
  # (The free-form stand-ins cannot read an attribute whose only definition is a false mkIf.)
  alertmanagerConfig =
    if config.services.streamscout.alerting.enable then
      config.services.prometheus.alertmanager.configText
    else
      null;
  nodeExporterPort = config.services.prometheus.exporters.node.port;
  grafanaEnabled = config.services.grafana.enable or false;
  lokiEnabled = config.services.loki.enable or false;
  # Repository files the host uses, as paths relative to the repository (no store copies).
  files =
    let
      rel = p: if p == null then null else lib.removePrefix (toString ../../.. + "/") (toString p);
    in
    {
      etc = lib.mapAttrs (_: e: if e ? source then rel e.source else null) config.environment.etc;
      lokiConfig = rel (config.services.loki.configFile or null);
      grafanaDatasources = rel (config.services.grafana.provision.datasources.path or null);
      grafanaDashboards = rel (config.services.grafana.provision.dashboards.path or null);
      alloyEnabled = config.services.streamscout.logs.enable && config.services.alloy.enable;
      grafanaSecretKey = config.services.grafana.settings.security.secret_key or null;
    };
  options = lib.mapAttrsRecursiveCond (a: !(a ? _type)) (_: o: o.type.name) evaluated.options.services.streamscout;
}
