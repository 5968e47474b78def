declare module 'node-gyp-build' {
  function nodeGypBuild(dir: string): any;
  export = nodeGypBuild;
}
