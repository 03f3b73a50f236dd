"""The configuration files of the kit's Nova, Placement and Glance
(:mod:`astara_localcloud.nova_cloud`): templates filled with the cloud's state directory,
ports, database URLs and RabbitMQ URL.
"""

NOVA_CONF = """\
[DEFAULT]
host = {host}
my_ip = 127.0.0.1
state_path = {state_dir}
instances_path = {state_dir}/instances
log_file = {state_dir}/{{service}}.log
use_stderr = false
debug = false
transport_url = {transport_url}
compute_driver = fake.FakeDriver
enabled_apis = osapi_compute
osapi_compute_listen = 127.0.0.1
osapi_compute_listen_port = {api_port}
osapi_compute_workers = 1
use_rootwrap_daemon = false
heal_instance_info_cache_interval = -1
sync_power_state_interval = -1
# Fewer service heartbeats: fewer writers contending for the SQLite files.
report_interval = 20
service_down_time = 120
instance_build_timeout = 0

[api]
auth_strategy = keystone

[wsgi]
api_paste_config = {state_dir}/nova-api-paste.ini

[api_database]
connection = {db_url_nova_api}

[database]
connection = {db_url_nova}

[glance]
api_servers = {glance_endpoint}
endpoint_override = {glance_endpoint}

[placement]
auth_type = admin_token
endpoint = {placement_endpoint}
endpoint_override = {placement_endpoint}
token = admin

[neutron]
auth_type = admin_token
endpoint = {neutron_endpoint}
endpoint_override = {neutron_endpoint}
token = admin

[scheduler]
discover_hosts_in_cells_interval = -1
workers = 1

[conductor]
workers = 1

[oslo_concurrency]
lock_path = {state_dir}/lock

[oslo_messaging_notifications]
driver = noop

[vnc]
enabled = false

[quota]
# One local cloud, no tenants to protect from each other: capacity is the only limit.
instances = -1
cores = -1
ram = -1

[cinder]
os_region_name = RegionOne
"""

PLACEMENT_CONF = """\
[DEFAULT]
log_file = {state_dir}/placement.log
use_stderr = false

[api]
auth_strategy = noauth2

[placement_database]
connection = {db_url_placement}
"""

GLANCE_CONF = """\
[DEFAULT]
bind_host = 127.0.0.1
bind_port = {glance_port}
workers = 1
log_file = {state_dir}/glance.log
use_stderr = false
enabled_import_methods = []

[database]
connection = {db_url_glance}

[glance_store]
stores = file
default_store = file
filesystem_store_datadir = {state_dir}/images

[paste_deploy]
flavor =
config_file = /etc/glance/glance-api-paste.ini

[oslo_concurrency]
lock_path = {state_dir}/lock
"""
