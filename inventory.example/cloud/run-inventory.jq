# The CI run's check and inventory, from `ansible-inventory --list` of a cloud inventory:
#   jq --arg group omr_run_<id> --arg host <server name> -f run-inventory.jq inventory.json > run-inventory.yml
# Fails unless the run's group holds exactly its new host: none means the server is not running yet
# or lacks the label, more means another server carries this run's label.
# Out comes a static inventory of that host, its variables as Ansible resolved them, in omr_vps
# (JSON, which is YAML). It is for the audit: pytest-testinfra reads `ansible-inventory --list`,
# where ansible-core 2.19 wraps a plugin's strings as {"__ansible_unsafe": ...}, and cannot take
# ansible_host from the cloud inventory itself; a static file's strings come out plain.
def plain: walk(if type == "object" and has("__ansible_unsafe") then .__ansible_unsafe else . end);

(.[$group].hosts // []) as $hosts
| if $hosts != [$host] then error("\($group) holds \($hosts | tojson), not [\"\($host)\"]") else . end
| {all: {children: {omr_vps: {children: {($group): {hosts: {($host): (._meta.hostvars[$host] | plain)}}}}}}}
