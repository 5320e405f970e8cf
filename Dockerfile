# syntax=docker/dockerfile:1
# Switchboard gateway image: a release binary with the Swift runtime linked in (--static-swift-stdlib)
# on Debian 12 slim with the three C libraries it loads (hiredis 0.14, OpenSSL 3, zlib). docs/deploy.md.
#
#   docker build -t switchboard .
#   docker run --rm -p 127.0.0.1:8080:8080 switchboard             # one node, in-process bus
#
# The build stage runs the README's commands (bash scripts/deps.sh run, then swift build ...);
# scripts/validate-deploy.sh fails when the two drift apart. The toolchain image matches the Swift
# the tests run with (6.3); override with --build-arg SWIFT_IMAGE=swift:6.x-bookworm.

ARG SWIFT_IMAGE=swift:6.3-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

# ---- build ------------------------------------------------------------------------------------------
FROM ${SWIFT_IMAGE} AS build
WORKDIR /src
# The dependency script alone first, so the apt layer survives source edits.
COPY scripts/deps.sh scripts/deps.sh
RUN bash scripts/deps.sh run
COPY Package.swift ./
COPY Sources Sources
# SwiftPM wants every declared target's directory, test targets included; nothing in them is built.
COPY Tests Tests
RUN swift build -c release --product switchboard --static-swift-stdlib
# Packaging only (not a build command): out of the symlinked .build/release into a fixed path.
RUN install -D -m 0755 .build/release/switchboard /out/switchboard

# ---- runtime ----------------------------------------------------------------------------------------
FROM ${RUNTIME_IMAGE}
# `upgrade` first: the base image's own packages get the security fixes published since it was made (the
# named ones are installed at their current versions anyway). Rebuild on a schedule: a pushed image keeps the
# versions of its build day (scripts/debian-security-check.sh, docs/security.md).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get upgrade -y --no-install-recommends \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libhiredis0.14 libssl3 zlib1g ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 switchboard \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin switchboard
COPY --from=build /out/switchboard /usr/local/bin/switchboard

# In a container the listeners bind every interface (the binary's default is 127.0.0.1); keep the admin
# port (9090) unpublished or firewalled: it serves /metrics and POST /api/publish.
ENV SWITCHBOARD_HOST=0.0.0.0 \
    SWITCHBOARD_ADMIN_HOST=0.0.0.0 \
    SWITCHBOARD_PORT=8080 \
    SWITCHBOARD_ADMIN_PORT=9090
EXPOSE 8080 9090
USER 10001:10001

# SIGTERM drains (/ready 503, paced `reconnect` + 1012, exit 0 before --drain-deadline); give the
# container a stop timeout above that deadline (docker stop -t 45, compose stop_grace_period: 45s).
STOPSIGNAL SIGTERM

# Liveness from /health on the admin port, asked by the binary itself (`--health-check`: one GET /health to
# the configured admin port, exit 0 on 200): the image needs no shell and no curl at run time.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["/usr/local/bin/switchboard", "--health-check"]

ENTRYPOINT ["/usr/local/bin/switchboard"]
