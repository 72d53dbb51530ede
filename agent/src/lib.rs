//! linkmeter node agent: probes, collectors and the CLI behind `linkmeter-agent`.
