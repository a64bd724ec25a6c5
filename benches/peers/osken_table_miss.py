"""The os-ken side of `periscope bench --osken`: the smallest useful proactive app.

When a switch's features arrive it installs one table-miss flow (priority 0, match anything,
send to the controller) and a barrier, so that the bench can time "initial flow program
confirmed" the same way for both controllers. Usage:
    osken-manager --ofp-tcp-listen-port PORT benches/peers/osken_table_miss.py
"""
from os_ken.base import app_manager
from os_ken.controller import ofp_event
from os_ken.controller.handler import CONFIG_DISPATCHER, set_ev_cls
from os_ken.ofproto import ofproto_v1_3


class TableMiss(app_manager.OSKenApp):
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def on_features(self, ev):
        dp = ev.msg.datapath
        ofp, parser = dp.ofproto, dp.ofproto_parser
        to_controller = parser.OFPActionOutput(ofp.OFPP_CONTROLLER, ofp.OFPCML_NO_BUFFER)
        inst = [parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, [to_controller])]
        dp.send_msg(parser.OFPFlowMod(datapath=dp, priority=0, match=parser.OFPMatch(),
                                      instructions=inst))
        dp.send_msg(parser.OFPBarrierRequest(dp))
