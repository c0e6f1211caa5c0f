"""--paste (--paster): the app of a PasteDeploy .ini file, loaded as
gunicorn's pasterapp loads it: "config:PATH[#NAME]" relative to the working
directory, with --paste-global KEY=VALUE as the global configuration, and the
file's [loggers] sections (when it has them) applied with logging.config."""
import configparser
import logging.config
import os
import re


def global_conf(raw):
    """gunicorn's paste_global_conf: KEY=VALUE items, '\\=' for a literal '='."""
    conf = {}
    for item in raw:
        parts = re.split(r'(?<!\\)=', item, 1)
        if len(parts) != 2:
            raise ValueError("--paste-global %r: expected KEY=VALUE" % item)
        conf[parts[0].replace('\\=', '=')] = parts[1].replace('\\=', '=')
    return conf


def load(uri, raw_global_conf):
    path = os.path.abspath(uri)
    config_file = path.split('#')[0]
    if not os.path.exists(config_file):
        raise FileNotFoundError("PasteDeploy file %r not found (check --paste)" % config_file)
    conf = global_conf(raw_global_conf)
    parser = configparser.ConfigParser()
    parser.read([config_file])
    if parser.has_section('loggers'):
        logging.config.fileConfig(config_file, defaults={
            '__file__': config_file, 'here': os.path.dirname(config_file)},
            disable_existing_loggers=False)
    try:
        from paste.deploy import loadapp
    except ImportError:
        raise ImportError("--paste needs PasteDeploy: apt-get install python3-pastedeploy")
    return loadapp("config:" + path, relative_to=os.getcwd(), global_conf=conf)
