# services.streamscout: the whole StreamScout pipeline on one NixOS host.
#
# Turns on and configures nixpkgs' PostgreSQL, Redis, Apache Kafka (KRaft), Prometheus,
# Alertmanager, node exporter, Loki, Alloy and Grafana, and adds StreamScout's own units:
# flink-jobmanager, flink-taskmanager, streamscout-migrate, streamscout-kafka-topics,
# streamscout-monitor, streamscout-api and the oneshot streamscout-flink-submit.
# Settings reach the services as STREAMSCOUT_* variables (nix/env.nix); secrets reach them as
# systemd credentials read at start-up, never through the Nix store.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  inherit (lib)
    mkOption
    mkEnableOption
    mkIf
    mkDefault
    types
    ;
  cfg = config.services.streamscout;
  defaults = import ./defaults.nix;
  packages = pkgs.callPackage ./packages.nix { };

  opt =
    type: default: description:
    mkOption { inherit type default description; };
  port = default: description: opt types.port default description;
  number = default: description: opt types.number default description;

  user = "streamscout";
  stateDir = defaults.stateDir; # StateDirectory=streamscout
  secretCredential = "twitch-client-secret";

  clientSecretFile =
    if cfg.twitch.clientSecretFile != null then
      cfg.twitch.clientSecretFile
    else
      # The simulator's built-in application secret is a public test value.
      "${pkgs.writeText "streamscout-sim-client-secret" cfg.simulator.clientSecret}";

  environment = import ./env.nix cfg;
  withSecret = environment // {
    STREAMSCOUT_TWITCH_CLIENT_SECRET_FILE = "%d/${secretCredential}";
  };

  streamscout = lib.getExe cfg.package;

  # `sudo streamscout-admin tokens check` (seed-tokens, detector status, db migrate, …): runs
  # the command the way the services run, as the streamscout user with their settings and the
  # client secret as a credential of the transient unit.
  admin = pkgs.writeShellScriptBin "streamscout-admin" ''
    unit=streamscout-admin-$$
    exec ${pkgs.systemd}/bin/systemd-run --quiet --pty --wait --collect --service-type=exec \
      --unit="$unit" -p User=${user} -p Group=${user} -p StateDirectory=streamscout \
      -p LoadCredential=${secretCredential}:${clientSecretFile} \
      ${
        lib.concatMapStringsSep " " (
          name: "--setenv=${lib.escapeShellArg "${name}=${environment.${name}}"}"
        ) (builtins.attrNames environment)
      } \
      --setenv=STREAMSCOUT_TWITCH_CLIENT_SECRET_FILE=/run/credentials/"$unit".service/${secretCredential} \
      ${streamscout} "$@"
  '';
  # PyFlink and StreamScout in one interpreter: the cluster's python.executable and the submitter.
  pyflinkPython = "${cfg.pythonEnv}/bin/python";

  flinkConf =
    role:
    pkgs.runCommand "streamscout-flink-${role}-conf"
      {
        config = builtins.toJSON (
          import ./flink-config.nix {
            inherit role stateDir;
            flink = cfg.flink;
            pythonExecutable = pyflinkPython;
          }
        );
        passAsFile = [ "config" ];
      }
      ''
        mkdir -p $out
        cp ${cfg.flink.distribution}/conf/log4j*.properties $out/
        # JSON is YAML: Flink 2 parses config.yaml with a standard YAML parser.
        cp $configPath $out/config.yaml
      '';

  # Common sandbox of StreamScout's own units (checked by tests/deploy on the plain units).
  hardening = {
    NoNewPrivileges = true;
    ProtectSystem = "strict";
    ProtectHome = true;
    PrivateTmp = true;
    PrivateDevices = true;
    PrivateUsers = true;
    ProtectKernelTunables = true;
    ProtectKernelModules = true;
    ProtectKernelLogs = true;
    ProtectControlGroups = true;
    ProtectClock = true;
    ProtectHostname = true;
    ProtectProc = "invisible";
    RestrictNamespaces = true;
    RestrictRealtime = true;
    RestrictSUIDSGID = true;
    LockPersonality = true;
    RemoveIPC = true;
    KeyringMode = "private";
    DevicePolicy = "closed";
    SystemCallArchitectures = "native";
    SystemCallErrorNumber = "EPERM";
    CapabilityBoundingSet = "";
    AmbientCapabilities = "";
    UMask = "0077";
    User = user;
    Group = user;
  };
  pythonHardening = hardening // {
    MemoryDenyWriteExecute = true;
    ProcSubset = "pid";
    SystemCallFilter = [
      "@system-service"
      "~@privileged @resources"
    ];
    RestrictAddressFamilies = [
      "AF_UNIX"
      "AF_INET"
      "AF_INET6"
    ];
  };
  # The JVM's JIT needs W+X memory and reads /proc/meminfo; it also enumerates interfaces.
  jvmHardening = hardening // {
    SystemCallFilter = [
      "@system-service"
      "~@privileged"
    ];
    RestrictAddressFamilies = [
      "AF_UNIX"
      "AF_INET"
      "AF_INET6"
      "AF_NETLINK"
    ];
  };
  stateDirectory = {
    StateDirectory = "streamscout";
    StateDirectoryMode = "0700";
    WorkingDirectory = stateDir;
  };
  credential = {
    LoadCredential = [ "${secretCredential}:${clientSecretFile}" ];
  };
  restartAlways = {
    Restart = "always";
    RestartSec = "5s";
  };

  infraUnits = [
    "postgresql.service"
    "redis-streamscout.service"
    "apache-kafka.service"
    "streamscout-migrate.service"
    "streamscout-kafka-topics.service"
  ];
  simUnits = lib.optionals cfg.simulator.enable [
    "streamscout-sim.service"
    "streamscout-sim-seed-tokens.service"
  ];
  flinkPath = [
    cfg.jre
    pkgs.bash
    pkgs.coreutils
    pkgs.gnugrep
    pkgs.gnused
    pkgs.gawk
    pkgs.findutils
    pkgs.hostname
    pkgs.procps
    pkgs.which
  ];
  flinkEnvironment = role: {
    # PyFlink's scripts derive FLINK_HOME from their own location unless told it is determined.
    FLINK_HOME = "${cfg.flink.distribution}";
    _FLINK_HOME_DETERMINED = "1";
    FLINK_CONF_DIR = "${flinkConf role}";
    FLINK_LOG_DIR = "/var/log/flink";
    JAVA_HOME = "${cfg.jre}";
  };
  flinkUnit = role: extra: {
    description = "Flink ${role} (StreamScout's standalone cluster)";
    after = [ "network.target" ] ++ lib.optional (role == "taskmanager") "flink-jobmanager.service";
    wantedBy = [ "multi-user.target" ];
    path = flinkPath;
    environment = flinkEnvironment role // (extra.environment or { });
    startLimitIntervalSec = 0;
    serviceConfig =
      jvmHardening
      // restartAlways
      // (extra.serviceConfig or { })
      // {
        ExecStart = "${cfg.flink.distribution}/bin/${role}.sh start-foreground";
        SuccessExitStatus = "143";
        TimeoutStopSec = "60s";
        StateDirectory = [
          "streamscout"
          "streamscout/flink"
        ];
        StateDirectoryMode = "0700";
        LogsDirectory = "flink";
        WorkingDirectory = "${stateDir}/flink";
      };
  };
in
{
  options.services.streamscout = {
    enable = mkEnableOption "StreamScout: Twitch chat spikes turned into clips";

    package = opt types.package packages.streamscout "The StreamScout application (CLI for every service).";
    pythonEnv = opt types.package packages.pyflinkEnv ''
      Python with PyFlink and StreamScout: the Flink cluster's python.executable and the
      interpreter of `streamscout detector submit`.
    '';
    jre = opt types.package packages.jre "Java runtime of the Flink cluster.";

    logLevel = opt (types.enum [
      "DEBUG"
      "INFO"
      "WARNING"
      "ERROR"
    ]) defaults.logLevel "Log level of every StreamScout service (JSON lines in the journal).";
    stateDir = mkOption {
      type = types.str;
      default = defaults.stateDir;
      readOnly = true;
      description = "State directory (systemd StateDirectory=streamscout); holds the token file.";
    };
    tokenFile = opt types.str defaults.tokenFile "Shared user token file (mode 0600), written by `streamscout seed-tokens`.";
    httpTimeoutSeconds = number defaults.httpTimeoutSeconds "Timeout of one Twitch HTTP call.";

    twitch = {
      clientId = opt types.str defaults.twitch.clientId "Twitch application client id (not secret).";
      clientSecretFile = opt (types.nullOr (types.strMatching "/.+")) null ''
        File holding the Twitch client secret, read by systemd at unit start (LoadCredential) and
        never copied to the Nix store. Required unless the simulator is enabled.
      '';
      helixUrl = opt types.str defaults.twitch.helixUrl "Helix base URL.";
      authUrl = opt types.str defaults.twitch.authUrl "OAuth base URL.";
      chatUrl = opt types.str defaults.twitch.chatUrl "Chat (IRC over WebSocket) URL.";
    };

    simulator = {
      enable = mkEnableOption "the Twitch simulator instead of Twitch (demos and the VM test)";
      port = port defaults.simulator.port "Port of the simulator.";
      scenario = opt types.str defaults.simulator.scenario "Simulator scenario name or path.";
      clientId = opt types.str defaults.simulator.clientId "The simulator's application client id.";
      clientSecret = opt types.str defaults.simulator.clientSecret "The simulator's application secret (a public test value).";
    };

    postgres.dsn = opt types.str defaults.postgres.dsn "Postgres connection string (default: local socket, peer authentication).";
    redis.port = port defaults.redis.port "Port of the redis-streamscout server.";

    kafka = {
      port = port defaults.kafka.port "Kafka broker port.";
      controllerPort = port defaults.kafka.controllerPort "KRaft controller port (not 9093, Alertmanager's).";
      partitions = opt types.ints.positive defaults.kafka.partitions "Partitions of the StreamScout topics.";
      topicChat = opt types.str defaults.kafka.topicChat "Chat messages topic.";
      topicLifecycle = opt types.str defaults.kafka.topicLifecycle "Stream online/offline topic.";
      clusterId = opt types.str defaults.kafka.clusterId "KRaft cluster id (22 characters of base64).";
    };

    flink = {
      distribution = opt types.package packages.flinkDist ''
        Flink distribution the cluster runs. Defaults to the one inside the PyFlink wheels, so
        cluster and PyFlink match; `pkgs.flink` works when its major.minor version equals PyFlink's.
      '';
      kafkaConnector = opt types.package packages.kafkaConnector "flink-sql-connector-kafka jar (Maven Central, fixed-output).";
      restPort = port defaults.flink.restPort "JobManager REST port.";
      rpcPort = port defaults.flink.rpcPort "JobManager RPC port.";
      jobmanagerMetricsPort = port defaults.flink.jobmanagerMetricsPort "JobManager Prometheus reporter port.";
      taskmanagerMetricsPort = port defaults.flink.taskmanagerMetricsPort "TaskManager Prometheus reporter port.";
      taskSlots = opt types.ints.positive defaults.flink.taskSlots "TaskManager slots.";
      jobmanagerMemory = opt types.str defaults.flink.jobmanagerMemory "jobmanager.memory.process.size";
      taskmanagerMemory = opt types.str defaults.flink.taskmanagerMemory "taskmanager.memory.process.size";
    };

    monitor = {
      host = opt types.str defaults.monitor.host "Address of the monitor's /metrics and /health.";
      port = port defaults.monitor.port "Port of the monitor's /metrics and /health.";
      pollSeconds = number defaults.monitor.pollSeconds "How often the monitor ranks live streams.";
      joinRank = opt types.ints.positive defaults.monitor.joinRank "Join a chat at this rank or better (top-N).";
      leaveRank = opt types.ints.positive defaults.monitor.leaveRank "Leave only below this rank (hysteresis).";
      livenessTtlSeconds = number defaults.monitor.livenessTtlSeconds "TTL of a channel's Redis liveness key.";
      clippingRecheckDays = number defaults.monitor.clippingRecheckDays "Days before a channel that refused clips is tried again.";
      stallSeconds = number defaults.monitor.stallSeconds "Rebuild the chat connection after this long without messages.";
      kafkaCompression = opt (types.enum [ "lz4" "gzip" "none" ]) defaults.monitor.kafkaCompression "Codec of the monitor's Kafka batches (lz4 costs the least CPU).";
    };

    detector = {
      variant = opt types.str defaults.detector.variant "Detector variant.";
      bucketSeconds = number defaults.detector.bucketSeconds "Width of a chat-count bucket.";
      baselineBuckets = opt types.ints.positive defaults.detector.baselineBuckets "Buckets in the baseline.";
      k = number defaults.detector.k "Spike threshold in standard deviations above the mean.";
      minExcess = number defaults.detector.minExcess "Minimum excess over the mean, in messages.";
      cooldownSeconds = number defaults.detector.cooldownSeconds "Cooldown per broadcaster after a detection.";
      clipDelaySeconds = number defaults.detector.clipDelaySeconds "Delay between detection and Create Clip.";
      retryOffsets = opt (types.listOf types.number) defaults.detector.retryOffsets "Retry offsets of Create Clip, seconds.";
      fetchOffsets = opt (types.listOf types.number) defaults.detector.fetchOffsets "Offsets at which a created clip is looked up.";
      parallelism = opt types.ints.positive defaults.detector.parallelism "Parallelism of the Flink job.";
      checkpointSeconds = number defaults.detector.checkpointSeconds "Checkpoint interval.";
      outOfOrdernessSeconds = number defaults.detector.outOfOrdernessSeconds "Watermark delay for late chat.";
      idlenessSeconds = number defaults.detector.idlenessSeconds "Idle partitions stop holding back watermarks after this long.";
    };

    api = {
      host = opt types.str defaults.api.host "Address the API and page listen on (put a reverse proxy in front to publish).";
      port = port defaults.api.port "Port of the API and page.";
      threads = opt types.ints.positive defaults.api.threads "Waitress worker threads.";
      poolMin = opt types.ints.positive defaults.api.poolMin "Minimum Postgres connections.";
      poolMax = opt types.ints.positive defaults.api.poolMax "Maximum Postgres connections.";
    };

    prometheus.port = port defaults.prometheus.port "Prometheus port (the Grafana datasources in configs/ expect 9090).";
    alertmanager.port = port defaults.alertmanager.port "Alertmanager port.";
    nodeExporter.port = port defaults.nodeExporter.port "Node exporter port (9100 is the monitor's).";
    discordWebhookFile = opt (types.nullOr (types.strMatching "/.+")) null ''
      File holding the Discord webhook URL. Alertmanager gets it as a systemd credential and reads
      it with webhook_url_file, so the URL never enters the Nix store.
    '';
    alerting.enable = opt types.bool true "Run Alertmanager with the Discord receiver of configs/alertmanager.yml.";
    logs.enable = opt types.bool true "Run Loki and Grafana Alloy (journald of every unit into Loki).";
    grafana = {
      enable = opt types.bool true "Run Grafana with the Prometheus and Loki datasources and the StreamScout dashboards.";
      port = port defaults.grafana.port "Grafana port.";
    };
  };

  config = mkIf cfg.enable {
    assertions = [
      {
        assertion = cfg.twitch.clientSecretFile != null || cfg.simulator.enable;
        message = "services.streamscout.twitch.clientSecretFile must be set (or enable services.streamscout.simulator).";
      }
      {
        assertion = cfg.discordWebhookFile != null || !cfg.alerting.enable;
        message = "services.streamscout.discordWebhookFile must be set (or set services.streamscout.alerting.enable = false).";
      }
      {
        assertion = cfg.monitor.joinRank <= cfg.monitor.leaveRank;
        message = "services.streamscout.monitor.joinRank must not exceed leaveRank.";
      }
      {
        assertion =
          lib.versions.majorMinor cfg.flink.distribution.version
          == lib.versions.majorMinor packages.apache-flink.version;
        message = "services.streamscout.flink.distribution must have PyFlink's version (${packages.apache-flink.version}).";
      }
    ];

    services.streamscout = mkIf cfg.simulator.enable {
      twitch = {
        clientId = mkDefault cfg.simulator.clientId;
        helixUrl = mkDefault "http://127.0.0.1:${toString cfg.simulator.port}/helix/";
        authUrl = mkDefault "http://127.0.0.1:${toString cfg.simulator.port}/oauth2/";
        chatUrl = mkDefault "ws://127.0.0.1:${toString cfg.simulator.port}/chat";
      };
    };

    users.users.${user} = {
      isSystemUser = true;
      group = user;
      home = stateDir;
      description = "StreamScout services (monitor, Flink cluster and detector share the token file)";
    };
    users.groups.${user} = { };

    # `streamscout detector submit` looks for the Flink client config and the Kafka connector
    # under STREAMSCOUT_STATE_DIR, where `streamscout stack up` puts them on a developer machine.
    systemd.tmpfiles.rules = [
      "d ${stateDir} 0700 ${user} ${user} -"
      "d ${stateDir}/flink 0700 ${user} ${user} -"
      "d ${stateDir}/flink/tmp 0700 ${user} ${user} -"
      "d ${stateDir}/flink/checkpoints 0700 ${user} ${user} -"
      "d ${stateDir}/flink/savepoints 0700 ${user} ${user} -"
      "d ${stateDir}/jars 0700 ${user} ${user} -"
      "d ${stateDir}/jars/flink 0700 ${user} ${user} -"
      "L+ ${stateDir}/flink/conf - - - - ${flinkConf "jobmanager"}"
      "L+ ${stateDir}/jars/flink/${cfg.flink.kafkaConnector.name} - - - - ${cfg.flink.kafkaConnector}"
    ];

    # `streamscout-admin <command>` for the operator (see above); plain `streamscout` too.
    environment.systemPackages = [
      admin
      cfg.package
    ];

    services.postgresql = {
      enable = true;
      ensureDatabases = [ "streamscout" ];
      ensureUsers = [
        {
          name = user;
          ensureDBOwnership = true;
        }
      ];
    };

    services.redis.servers.streamscout = {
      enable = true;
      bind = "127.0.0.1";
      port = cfg.redis.port;
    };

    services.apache-kafka = {
      enable = true;
      clusterId = cfg.kafka.clusterId;
      formatLogDirs = true;
      jvmOptions = [
        "-Xms256m"
        "-Xmx768m"
      ];
      settings = {
        "node.id" = 1;
        "process.roles" = [
          "broker"
          "controller"
        ];
        "listeners" = [
          "PLAINTEXT://127.0.0.1:${toString cfg.kafka.port}"
          "CONTROLLER://127.0.0.1:${toString cfg.kafka.controllerPort}"
        ];
        "advertised.listeners" = [ "PLAINTEXT://127.0.0.1:${toString cfg.kafka.port}" ];
        "listener.security.protocol.map" = [
          "PLAINTEXT:PLAINTEXT"
          "CONTROLLER:PLAINTEXT"
        ];
        "controller.listener.names" = [ "CONTROLLER" ];
        "controller.quorum.voters" = [ "1@127.0.0.1:${toString cfg.kafka.controllerPort}" ];
        "log.dirs" = [ "/var/lib/apache-kafka" ];
        "num.partitions" = cfg.kafka.partitions;
        "inter.broker.listener.name" = "PLAINTEXT";
        "offsets.topic.replication.factor" = 1;
        "transaction.state.log.replication.factor" = 1;
        "transaction.state.log.min.isr" = 1;
        "share.coordinator.state.topic.replication.factor" = 1;
        "share.coordinator.state.topic.min.isr" = 1;
        "group.initial.rebalance.delay.ms" = 0;
        "log.retention.hours" = 24;
        "log.segment.bytes" = 67108864;
      };
    };

    services.prometheus = {
      enable = true;
      listenAddress = "127.0.0.1";
      port = cfg.prometheus.port;
      configText = import ./prometheus-config.nix {
        text = builtins.readFile ../configs/prometheus.yml;
        rulesFile = "${../configs/prometheus/alert_rules.yml}";
        ports = {
          prometheus = cfg.prometheus.port;
          alertmanager = cfg.alertmanager.port;
          monitor = cfg.monitor.port;
          jobmanagerMetrics = cfg.flink.jobmanagerMetricsPort;
          taskmanagerMetrics = cfg.flink.taskmanagerMetricsPort;
          node = cfg.nodeExporter.port;
          api = cfg.api.port;
        };
      };
      exporters.node = {
        enable = true;
        listenAddress = "127.0.0.1";
        port = cfg.nodeExporter.port;
      };
      alertmanager = mkIf cfg.alerting.enable {
        enable = true;
        listenAddress = "127.0.0.1";
        port = cfg.alertmanager.port;
        # The committed file already reads the URL from /run/credentials/alertmanager.service/.
        configText = builtins.readFile ../configs/alertmanager.yml;
        extraFlags = [ "--cluster.listen-address=" ];
      };
    };
    systemd.services.alertmanager = mkIf cfg.alerting.enable {
      serviceConfig.LoadCredential = [ "discord-webhook-url:${cfg.discordWebhookFile}" ];
    };

    services.loki = mkIf cfg.logs.enable {
      enable = true;
      configFile = ../configs/loki.yml;
    };
    # nixpkgs' Alloy reads /etc/alloy (reloading on changes of alloy/config.alloy) and is already
    # in the systemd-journal group that loki.source.journal needs.
    services.alloy.enable = mkIf cfg.logs.enable true;
    environment.etc."alloy/config.alloy" = mkIf cfg.logs.enable { source = ../configs/alloy/config.alloy; };

    services.grafana = mkIf cfg.grafana.enable {
      enable = true;
      settings = {
        server = {
          http_addr = "127.0.0.1";
          http_port = cfg.grafana.port;
        };
        # Generated on first boot by streamscout-grafana-secret; never in the Nix store.
        security.secret_key = "$__file{/var/lib/grafana/streamscout-secret-key}";
        analytics.reporting_enabled = false;
      };
      provision = {
        enable = true;
        # The committed provisioning files: datasources by uid, and a provider that loads the
        # dashboards from /etc/streamscout/grafana/dashboards.
        datasources.path = ../configs/grafana/provisioning/datasources;
        dashboards.path = ../configs/grafana/provisioning/dashboards;
      };
    };
    environment.etc."streamscout/grafana/dashboards" = mkIf cfg.grafana.enable {
      source = ../configs/grafana/dashboards;
    };
    systemd.services.streamscout-grafana-secret = mkIf cfg.grafana.enable {
      description = "Grafana secret key for StreamScout (generated once)";
      wantedBy = [ "grafana.service" ];
      before = [ "grafana.service" ];
      serviceConfig = {
        Type = "oneshot";
        RemainAfterExit = true;
        StateDirectory = "grafana";
      };
      script = ''
        key=/var/lib/grafana/streamscout-secret-key
        if [ ! -s "$key" ]; then
          umask 077
          ${pkgs.openssl}/bin/openssl rand -hex 32 > "$key"
          chown grafana:grafana "$key"
        fi
      '';
    };

    systemd.services = {
      streamscout-migrate = {
        description = "StreamScout database schema migration";
        after = [
          "postgresql.service"
          "postgresql-setup.service"
        ];
        requires = [ "postgresql.service" ];
        wantedBy = [ "multi-user.target" ];
        inherit environment;
        serviceConfig = pythonHardening // {
          Type = "oneshot";
          RemainAfterExit = true;
          ExecStart = "${streamscout} db migrate";
        };
      };

      streamscout-kafka-topics = {
        description = "StreamScout Kafka topics";
        after = [ "apache-kafka.service" ];
        requires = [ "apache-kafka.service" ];
        wantedBy = [ "multi-user.target" ];
        path = [ cfg.jre ];
        environment.LOG_DIR = "/tmp";
        startLimitIntervalSec = 0;
        serviceConfig = jvmHardening // {
          Type = "oneshot";
          RemainAfterExit = true;
          Restart = "on-failure";
          RestartSec = "10s";
          ExecStart = map (
            topic:
            "${config.services.apache-kafka.package}/bin/kafka-topics.sh --bootstrap-server 127.0.0.1:${toString cfg.kafka.port}"
            + " --create --if-not-exists --topic ${topic} --partitions ${toString cfg.kafka.partitions} --replication-factor 1"
          ) [ cfg.kafka.topicChat cfg.kafka.topicLifecycle ];
        };
      };

      flink-jobmanager = flinkUnit "jobmanager" { };
      # The detector runs in the TaskManager's Python workers: they need the settings, the client
      # secret (token refresh) and the token file in the shared state directory.
      flink-taskmanager = flinkUnit "taskmanager" {
        environment = withSecret;
        serviceConfig = credential;
      };

      streamscout-monitor = {
        description = "StreamScout stream monitor (top streams, chat into Kafka)";
        wants = [ "network-online.target" ];
        after = [ "network-online.target" ] ++ infraUnits ++ simUnits;
        requires = [ "streamscout-migrate.service" ];
        wantedBy = [ "multi-user.target" ];
        environment = withSecret;
        startLimitIntervalSec = 0;
        serviceConfig =
          pythonHardening
          // stateDirectory
          // credential
          // restartAlways
          // {
            Type = "exec";
            ExecStart = "${streamscout} monitor";
            TimeoutStopSec = "30s";
          };
      };

      streamscout-api = {
        description = "StreamScout API and web page";
        after = [
          "postgresql.service"
          "streamscout-migrate.service"
        ];
        requires = [ "streamscout-migrate.service" ];
        wantedBy = [ "multi-user.target" ];
        inherit environment;
        startLimitIntervalSec = 0;
        serviceConfig =
          pythonHardening
          // restartAlways
          // {
            Type = "exec";
            ExecStart = "${streamscout} api";
            TimeoutStopSec = "30s";
          };
      };

      # Idempotent: a running StreamScout job means nothing to do; a retained checkpoint is
      # resumed. Refuses while `tokens check` fails, so it retries until tokens are seeded.
      streamscout-flink-submit = {
        description = "Submit the StreamScout clip detector to Flink";
        after = [
          "flink-jobmanager.service"
          "flink-taskmanager.service"
        ] ++ infraUnits ++ simUnits;
        requires = [
          "flink-jobmanager.service"
          "streamscout-migrate.service"
        ];
        wants = [
          "flink-taskmanager.service"
          "streamscout-kafka-topics.service"
        ];
        wantedBy = [ "multi-user.target" ];
        path = flinkPath ++ [ cfg.flink.distribution ];
        environment = withSecret // flinkEnvironment "jobmanager";
        startLimitIntervalSec = 0;
        serviceConfig =
          jvmHardening
          // stateDirectory
          // credential
          // {
            Type = "oneshot";
            RemainAfterExit = true;
            Restart = "on-failure";
            RestartSec = "30s";
            TimeoutStartSec = "10min";
            LogsDirectory = "flink"; # `flink run` writes its client log there
            ExecStart = "${pyflinkPython} -m streamscout.cli detector submit";
          };
      };

      streamscout-sim = mkIf cfg.simulator.enable {
        description = "StreamScout Twitch simulator";
        after = [ "network.target" ];
        wantedBy = [ "multi-user.target" ];
        inherit environment;
        serviceConfig =
          pythonHardening
          // stateDirectory
          // restartAlways
          // {
            Type = "exec";
            ExecStart = "${streamscout} sim --scenario ${cfg.simulator.scenario} --port ${toString cfg.simulator.port}";
          };
      };

      # With the simulator there is no person to approve the device code: the simulator does.
      streamscout-sim-seed-tokens = mkIf cfg.simulator.enable {
        description = "Seed the StreamScout token file against the simulator";
        after = [ "streamscout-sim.service" ];
        requires = [ "streamscout-sim.service" ];
        wantedBy = [ "multi-user.target" ];
        environment = withSecret;
        startLimitIntervalSec = 0;
        serviceConfig =
          pythonHardening
          // stateDirectory
          // credential
          // {
            Type = "oneshot";
            RemainAfterExit = true;
            Restart = "on-failure";
            RestartSec = "5s";
          };
        script = ''
          ${streamscout} tokens check || ${streamscout} seed-tokens --force \
            --auto-approve-url http://127.0.0.1:${toString cfg.simulator.port}/sim/device/approve
        '';
      };
    };
  };
}
