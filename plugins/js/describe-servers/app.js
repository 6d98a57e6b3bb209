// describe-servers: a magg tool filter that tells, in each tool's description, which server
// the tool comes from.
//
// By default each description becomes `[<server>] <description>`; a tool without a
// description gets `[<server>] <name>`. Setting `format` replaces the template; its
// placeholders are `{server}`, `{name}` (the exposed name), `{original_name}` (the name on
// its own server) and `{description}` (the tool's description, or its name when it has
// none). Every tool is kept.
//
// Built with componentize-js against the `tool-filter-plugin` world of wit/plugin.wit; see
// ../../build-py-js.sh.

import { setting, log } from 'magg:plugin/host@0.2.0';

const DEFAULT_FORMAT = '[{server}] {description}';

const PLACEHOLDER = /\{(server|name|original_name|description)\}/g;
const HAS_PLACEHOLDER = /\{(server|name|original_name|description)\}/;

function describe(format, tool) {
  const values = {
    server: tool.server,
    name: tool.name,
    original_name: tool.originalName,
    description: tool.description ?? tool.name,
  };
  // One pass, so a placeholder inside a value is not expanded again.
  return format.replace(PLACEHOLDER, (_, key) => values[key]);
}

export const toolFilter = {
  filter(tools) {
    let format = setting('format');
    if (format === undefined || format === null || format === '') {
      format = DEFAULT_FORMAT;
    } else if (!HAS_PLACEHOLDER.test(format)) {
      log('warn', `setting \`format\` has no placeholder: every description becomes ${JSON.stringify(format)}`);
    }
    return tools.map((tool) => ({ ...tool, description: describe(format, tool) }));
  },
};
