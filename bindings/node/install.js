'use strict'
// `npm install` hook: builds the native module (quiver.<platform>.node) from the Rust sources
// with @napi-rs/cli, unless one is already here.
//
//   QUIVER_NODE_PROFILE=debug   build the debug profile (default: release)
//   QUIVER_NODE_REBUILD=1       build even if a native module is already here
//   QUIVER_NODE_SKIP_BUILD=1    do nothing (a build step of your own follows)
//
// Cargo runs with --locked and uses the workspace's target folder (or CARGO_TARGET_DIR). The
// build also regenerates binding.js (the platform loader) and index.d.ts (header.d.ts plus
// the types of the native classes).

const { existsSync, readdirSync } = require('node:fs')
const { spawnSync } = require('node:child_process')
const path = require('node:path')

const here = __dirname
const env = process.env

function main() {
  if (env.QUIVER_NODE_SKIP_BUILD === '1') return 0
  const built = readdirSync(here).filter((f) => /^quiver\..*\.node$/.test(f))
  if (built.length > 0 && env.QUIVER_NODE_REBUILD !== '1') {
    console.log(`quiver-http: using ${built.join(', ')} (QUIVER_NODE_REBUILD=1 rebuilds)`)
    return 0
  }
  if (!existsSync(path.join(here, 'Cargo.toml'))) {
    console.error('quiver-http: no native module for this platform and no Rust sources to build one from')
    return 1
  }
  const release = (env.QUIVER_NODE_PROFILE ?? 'release') !== 'debug'
  const args = ['build', '--platform', '--js', 'binding.js', '--dts', 'index.d.ts', '--no-const-enum']
  if (release) args.push('--release')
  args.push('--', '--locked')
  let cli = napiCli()
  if (cli === null) {
    // `npm install ./bindings/node` links this folder and runs this script without installing
    // the folder's own dependencies: install them (the pinned napi CLI) from package-lock.json.
    console.log('quiver-http: npm install (this package\'s build tools, from package-lock.json)')
    const npm = env.npm_execpath ? [process.execPath, [env.npm_execpath]] : ['npm', []]
    const r = spawnSync(npm[0], [...npm[1], 'install', '--no-save', '--ignore-scripts', '--omit=dev',
      '--no-audit', '--no-fund', '--loglevel=error'], { cwd: here, stdio: 'inherit' })
    if (r.status !== 0) return r.status ?? 1
    cli = napiCli()
    if (cli === null) {
      console.error('quiver-http: @napi-rs/cli is still missing')
      return 1
    }
  }
  console.log(`quiver-http: napi ${args.join(' ')}`)
  const r = spawnSync(process.execPath, [cli, ...args], { cwd: here, stdio: 'inherit' })
  if (r.error) {
    console.error(`quiver-http: cannot run the napi CLI: ${r.error.message}`)
    return 1
  }
  return r.status ?? 1
}

/** The napi CLI's entry script (a dependency of this package), or null. */
function napiCli() {
  try {
    const pkg = require.resolve('@napi-rs/cli/package.json', { paths: [here] })
    const bin = require(pkg).bin
    return path.join(path.dirname(pkg), typeof bin === 'string' ? bin : bin.napi)
  } catch {
    return null
  }
}

process.exitCode = main()
