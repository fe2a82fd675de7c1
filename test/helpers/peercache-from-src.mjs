// peercache-from-src: `node --import tsx --import ./test/helpers/peercache-from-src.mjs app.mjs`
// runs an app that imports the bare name 'peercache' (an example written for
// the installed package) against this repository's src/, without a build.
import { register } from 'node:module'

register('./peercache-resolve.mjs', import.meta.url)
