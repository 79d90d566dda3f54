# syntax=docker/dockerfile:1
# The context server as a non-root image: compiled JavaScript, production dependencies, the
# shipped models. Build: `docker build -t context-server:0.1.0 .`
#
# onnxruntime-node's install script would download CUDA provider libraries from outside the
# npm registry; the CPU runtime ships inside its tarball, so every `npm ci` skips scripts
# (.npmrc says the same for a plain `npm ci`).
# Build: compile TypeScript with the dev dependencies.
FROM node:20-bookworm-slim AS build
WORKDIR /app
ENV ONNXRUNTIME_NODE_INSTALL=skip
COPY package.json package-lock.json .npmrc ./
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY scripts ./scripts
COPY migrations ./migrations
RUN npm run build

# Production dependencies only, in their own stage so they are cached apart from the sources.
FROM node:20-bookworm-slim AS deps
WORKDIR /app
ENV ONNXRUNTIME_NODE_INSTALL=skip
COPY package.json package-lock.json .npmrc ./
# onnxruntime-node ships binaries for every platform; only Linux's can load here (-220 MB).
RUN npm ci --omit=dev --ignore-scripts \
 && rm -rf node_modules/onnxruntime-node/bin/napi-v*/darwin node_modules/onnxruntime-node/bin/napi-v*/win32 \
 && npm cache clean --force

# Run: owned by root and read-only to the `node` user (uid 1000) that runs it.
FROM node:20-bookworm-slim AS runtime
WORKDIR /app
ENV NODE_ENV=production \
    PORT=4000 \
    MODEL_DIR=/app/models
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# package.json: the server reports its version from it (OIP server metadata).
COPY package.json schema.graphql ./
# The models are committed build outputs (`npm run build:models`); they are not rebuilt here.
COPY models ./models
USER node
EXPOSE 4000
# Node's own fetch, so the image needs no curl.
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||4000)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "--enable-source-maps", "dist/src/main.js"]
