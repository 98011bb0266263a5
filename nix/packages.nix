# StreamScout, the PyFlink runtime and the Flink distribution the cluster runs, from pinned sources.
#
# PyFlink is not in nixpkgs, so its PyPI wheels are packaged here (hashes from PyPI, checked
# against the downloaded files). The apache-flink wheels carry a complete Flink distribution
# (bin/, lib/, opt/, plugins/ with the Prometheus reporter); `flinkDist` assembles it, so the
# cluster, the `flink run` client and the Python workers are the same Flink version by
# construction. nixpkgs' own `flink` can replace it (services.streamscout.flink.distribution);
# the module then asserts that its major.minor version equals PyFlink's.
{
  lib,
  stdenv,
  python312,
  fetchurl,
  runCommand,
  autoPatchelfHook,
  jdk17_headless,
}:
let
  python = python312; # the apache-flink 2.2.0 wheels are built for CPython 3.9 to 3.12
  ps = python.pkgs;
  pyflinkVersion = "2.2.0";
  pyproject = builtins.fromTOML (builtins.readFile ../pyproject.toml);

  pemja = ps.buildPythonPackage {
    pname = "pemja";
    version = "0.5.5";
    format = "wheel";
    src = fetchurl {
      url = "https://files.pythonhosted.org/packages/95/69/2d48f9fe7afa617350eb18296eb57bf8c80190ee56a51641a29b13c6905e/pemja-0.5.5-cp312-cp312-manylinux1_x86_64.whl";
      hash = "sha256-BS5rC+IouxMN6rC7eRWXeY8hfDqu43EcD3d8KpaAuzE=";
    };
    nativeBuildInputs = [ autoPatchelfHook ];
    buildInputs = [ stdenv.cc.cc.lib ];
    # libjvm.so is found at run time through JAVA_HOME, as upstream intends.
    autoPatchelfIgnoreMissingDeps = [ "libjvm.so" ];
    dependencies = [ ps.numpy ];
    meta.platforms = [ "x86_64-linux" ];
  };

  apache-flink-libraries = ps.buildPythonPackage {
    pname = "apache-flink-libraries";
    version = pyflinkVersion;
    format = "wheel";
    src = fetchurl {
      url = "https://files.pythonhosted.org/packages/78/73/b38dbe002be01811d25a9f701706d987e0449901912ed793742a3db199ef/apache_flink_libraries-2.2.0-py2.py3-none-any.whl";
      hash = "sha256-Z1BiSE2bBN8ii+gM9Becn5Lp4REHppfMuxqn07gWdys=";
    };
    # Both wheels install into pyflink/; drop the two files they share so python.withPackages
    # can merge them without a collision.
    postInstall = ''
      rm $out/${python.sitePackages}/pyflink/README.txt $out/${python.sitePackages}/pyflink/version.py
    '';
  };

  apache-flink = ps.buildPythonPackage {
    pname = "apache-flink";
    version = pyflinkVersion;
    format = "wheel";
    src = fetchurl {
      url = "https://files.pythonhosted.org/packages/e7/b3/faafca1d6a6c88bd902cbb60155c75ddca455badea40590dae536b930e2e/apache_flink-2.2.0-cp312-cp312-manylinux_2_5_x86_64.manylinux1_x86_64.manylinux_2_17_x86_64.manylinux2014_x86_64.whl";
      hash = "sha256-k4KNrNrbd9z2yJoKxmH1zfv2VJGif4/YR/Z+vcpuch0=";
    };
    nativeBuildInputs = [ autoPatchelfHook ];
    buildInputs = [ stdenv.cc.cc.lib ];
    # Upstream pins exact versions (py4j ==, apache-beam <= 2.61, pandas < 2.3); nixpkgs moves on.
    pythonRelaxDeps = true;
    dependencies = with ps; [
      apache-flink-libraries
      pemja
      py4j
      python-dateutil
      apache-beam
      cloudpickle
      avro
      pytz
      fastavro
      requests
      protobuf
      numpy
      pandas
      pyarrow
      httplib2
      ruamel-yaml
    ];
    meta.platforms = [ "x86_64-linux" ];
  };

  # StreamScout's runtime dependencies, from nixpkgs.
  runtimeDeps = with ps; [
    twitchapi
    kafka-python
    crc32c
    lz4
    orjson
    redis
    psycopg
    psycopg-pool
    bottle
    waitress
    prometheus-client
    jinja2
    click
    aiohttp
    pyyaml
  ];

  streamscout = ps.buildPythonApplication {
    pname = "streamscout";
    inherit (pyproject.project) version;
    pyproject = true;
    src = lib.fileset.toSource {
      root = ../.;
      fileset = lib.fileset.unions [
        ../pyproject.toml
        ../README.md
        ../src
      ];
    };
    build-system = [ ps.hatchling ];
    dependencies = runtimeDeps;
    # pyproject pins twitchAPI exactly for pip users; accept the version nixpkgs carries.
    pythonRelaxDeps = [
      "twitchAPI"
      "twitchapi"
    ];
    optional-dependencies.flink = [ apache-flink ];
    pythonImportsCheck = [
      "streamscout.cli"
      "streamscout.common.config"
    ];
    passthru = { inherit python apache-flink; };
    meta = {
      description = pyproject.project.description;
      license = lib.licenses.mit;
      mainProgram = "streamscout";
    };
  };

  # The Python of the Flink cluster (python.executable) and of `streamscout detector submit`:
  # PyFlink and StreamScout's modules in one interpreter.
  pyflinkEnv = python.withPackages (_: [ apache-flink ] ++ runtimeDeps ++ [ (ps.toPythonModule streamscout) ]);

  # A Flink home directory made of the two wheels' pyflink/ trees: scripts are copied (Flink's
  # config.sh derives FLINK_HOME from its own resolved location); lib/, opt/ and plugins/ are real
  # directories of symlinked jars, because config.sh collects the classpath with `find`, which
  # does not descend into a symlinked directory.
  flinkDist = runCommand "flink-dist-${pyflinkVersion}" { passthru.version = pyflinkVersion; } ''
    lib=${apache-flink-libraries}/${python.sitePackages}/pyflink
    py=${apache-flink}/${python.sitePackages}/pyflink
    mkdir -p $out/bin
    cp $py/bin/* $lib/bin/* $out/bin/
    chmod +x $out/bin/*.sh
    patchShebangs $out/bin
    cp -r $py/conf $out/conf
    for d in lib opt plugins; do cp -rs $lib/$d $out/$d; done
    ln -s $lib/licenses $out/licenses
  '';

  # The Kafka connector is not part of the distribution: a fixed-output fetch from Maven Central.
  kafkaConnector = fetchurl {
    name = "flink-sql-connector-kafka-5.0.0-2.2.jar";
    url = "https://repo1.maven.org/maven2/org/apache/flink/flink-sql-connector-kafka/5.0.0-2.2/flink-sql-connector-kafka-5.0.0-2.2.jar";
    hash = "sha256-VgXGkdEaUBOCw4P+y6N6elUkZ9pat7qQTvXW89YsVhY=";
  };
in
{
  inherit
    streamscout
    apache-flink
    apache-flink-libraries
    pemja
    pyflinkEnv
    flinkDist
    kafkaConnector
    ;
  jre = jdk17_headless;
}
