# The g8s reconciler image: the daemon and CLI compiled to JavaScript (dist/), the project it
# reconciles (index.ts, components/, stacks/, policy/), its npm packages, and the Pulumi CLI,
# Node.js language host and Kubernetes provider plugin built from the Go modules tools/ pins.
# The Helm chart (charts/g8s) runs it as `g8s daemon` replicas; see charts/g8s/README.md.
#
#   docker build -t <registry>/g8s:0.1.0 .
ARG GO_IMAGE=golang:1.26.8-bookworm
ARG NODE_IMAGE=node:20.19.5-bookworm
ARG RUNTIME_IMAGE=node:20.19.5-bookworm-slim

FROM ${GO_IMAGE} AS go

FROM ${NODE_IMAGE} AS build
COPY --from=go /usr/local/go /usr/local/go
ENV PATH=/usr/local/go/bin:$PATH
WORKDIR /opt/g8s
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
# Only the tools the daemon runs: the Pulumi CLI and language host, the Kubernetes provider.
RUN npm run build && bash tools/build.sh pulumi pulumi-kubernetes && rm -rf /root/go /root/.cache

FROM ${RUNTIME_IMAGE}
# git: following a branch of the repository (G8S_GIT_BRANCH); ca-certificates: TLS to backends.
RUN apt-get update \
  && apt-get install -y --no-install-recommends git ca-certificates \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/g8s
COPY --from=build /opt/g8s /opt/g8s
ENV NODE_ENV=production \
  HOME=/tmp \
  G8S_PROJECT_DIR=/opt/g8s \
  G8S_STATE_DIR=/var/lib/g8s
USER 65532:65532
EXPOSE 9464
# Through its shebang: the daemon's V8 flags (bin/g8s.js).
ENTRYPOINT ["/opt/g8s/bin/g8s.js"]
CMD ["daemon"]
