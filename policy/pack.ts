/** The g8s policies as a CrossGuard policy pack, for an engine that runs packs (`--policy-pack policy`). */
import { PolicyPack } from "@pulumi/policy";
import { G8S_POLICIES } from "./policies";

new PolicyPack("g8s", { policies: [...G8S_POLICIES] });
