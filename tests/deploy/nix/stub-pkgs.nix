# Stand-ins for the nixpkgs packages StreamScout's Nix code uses (this machine has no nixpkgs):
# derivation-shaped attrsets with the attributes the code reads. Shared by eval-module.nix and
# eval-flake.nix.
{ lib }:
let
  inherit (lib) mkOption types;
  drv =
    name: extra:
    {
      type = "derivation";
      inherit name;
      outPath = "/nix/store/00000000000000000000000000000000-${name}";
      meta = { };
    }
    // extra;
  freeform = mkOption {
    type = types.submodule { freeformType = types.lazyAttrsOf types.anything; };
    default = { };
  };
  python = {
    sitePackages = "lib/python3.12/site-packages";
    withPackages = _: drv "python3-env" { };
    pkgs = {
      buildPythonPackage = a: drv a.pname { inherit (a) version; };
      buildPythonApplication =
        a:
        drv a.pname {
          inherit (a) version;
          meta.mainProgram = "streamscout";
        };
      toPythonModule = d: d;
    }
    // lib.genAttrs [
      "numpy"
      "py4j"
      "python-dateutil"
      "apache-beam"
      "cloudpickle"
      "avro"
      "pytz"
      "fastavro"
      "requests"
      "protobuf"
      "pandas"
      "pyarrow"
      "httplib2"
      "ruamel-yaml"
      "twitchapi"
      "kafka-python"
      "redis"
      "psycopg"
      "psycopg-pool"
      "bottle"
      "waitress"
      "prometheus-client"
      "jinja2"
      "click"
      "aiohttp"
      "pyyaml"
      "hatchling"
    ] (n: drv n { });
  };
  pkgs =
    {
      writeShellScript = name: _text: drv name { };
      writeShellScriptBin = name: text: drv name { inherit text; };
      testers.runNixOSTest = test: test;
      inherit lib;
      python312 = python;
      stdenv.cc.cc.lib = drv "gcc-lib" { };
      fetchurl = a: drv (a.name or (baseNameOf a.url)) { };
      runCommand = name: env: _script: drv name (env.passthru or { });
      writeText = name: _text: drv name { };
      autoPatchelfHook = drv "auto-patchelf-hook" { };
      jdk17_headless = drv "openjdk-17" { };
      callPackage = f: args: import f (builtins.intersectAttrs (builtins.functionArgs (import f)) pkgs // args);
    }
    // lib.genAttrs [
      "bash"
      "coreutils"
      "gnugrep"
      "gnused"
      "gawk"
      "findutils"
      "hostname"
      "procps"
      "which"
      "openssl"
      "util-linux"
      "postgresql"
      "redis"
      "prometheus"
      "curl"
      "systemd"
    ] (n: drv n { });

in
{
  inherit drv pkgs freeform;
}
