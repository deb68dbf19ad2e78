(function(){
var errs=document.getElementById('errors');
window.onerror=function(m){var d=document.createElement('div');d.textContent='error: '+m;errs.appendChild(d);};
var HUE=[0,120,45,280,200,300];var NAMES=['Unmovable','Movable','Reclaimable','HighAtomic','CMA','Isolate'];
var tip=document.getElementById('tip');
function col(d,i){var per=d.pageblock_pages*d.group;var present=per-d.hole[i];if(present<=0)return '#fff';
 var used=present-d.free[i];if(used<=0)return '#f4f4f4';var f=used/present;var l=88-50*f;
 return 'hsl('+HUE[d.mt[i]]+',60%,'+l+'%)';}
function draw(cv){var d=JSON.parse(document.getElementById(cv.id+'-data').textContent);
 var n=d.pfn.length,C=n<=2048?64:128,S=n<=2048?12:(n<=16384?6:4),LAB=96,rows=0,LE=Math.ceil(12/(S+2));
 d.zones.forEach(function(z){rows+=Math.ceil(z.cells/C);});
 cv.width=LAB+C*S+4;cv.height=rows*(S+2)+d.zones.length*18+8;var g=cv.getContext('2d');g.font='11px monospace';
 var y=4,pos=[],drawn=0;
 d.zones.forEach(function(z){g.fillStyle='#222';g.font='bold 12px sans-serif';g.fillText(z.name+'  (pfn 0x'+z.start_pfn.toString(16)+'-0x'+z.end_pfn.toString(16)+')',2,y+12);g.font='10px monospace';y+=18;
  var sc=function(r,c){if(!r)return;g.fillStyle=c;for(var i=0;i<z.cells;i++){var p=d.pfn[z.first_cell+i];var e=p+d.pageblock_pages*d.group;
   if(e>r[0]&&p<r[1]){var rr=Math.floor(i/C),cc=i%C;g.fillRect(LAB+cc*S,y+rr*(S+2)+S-1,S,2);}}};
  for(var i=0;i<z.cells;i++){var k=z.first_cell+i,r=Math.floor(i/C),c=i%C,x=LAB+c*S,yy=y+r*(S+2);
   if(c==0&&r%LE==0){g.fillStyle='#555';g.fillText('0x'+d.pfn[k].toString(16),2,yy+Math.min(S,10));}
   g.fillStyle=col(d,k);g.fillRect(x,yy,S-1,S-1);var m=d.marks[k],q=Math.max(2,S>>2);
   if(m&1){g.fillStyle='#000';g.fillRect(x+1,yy+1,q,q);} if(m&2){g.fillStyle='#d00';g.fillRect(x+S-1-q,yy,q,q);}
   if(m&4){g.fillStyle='#666';g.fillRect(x,yy+S-1-q,q,q);} pos[k]=[x,yy];drawn++;}
  sc(z.migrate_scanned,'#06c');sc(z.free_scanned,'#f80');
  y+=Math.ceil(z.cells/C)*(S+2);});
 cv.setAttribute('data-cells',drawn);
 cv.addEventListener('mousemove',function(ev){var b=cv.getBoundingClientRect(),mx=ev.clientX-b.left,my=ev.clientY-b.top,hit=-1;
  for(var k=0;k<pos.length;k++){var p=pos[k];if(p&&mx>=p[0]&&mx<p[0]+S&&my>=p[1]&&my<p[1]+S){hit=k;break;}}
  if(hit<0){tip.style.display='none';return;}
  var s=d.pfn[hit],e=s+d.pageblock_pages*d.group;
  tip.textContent='pfn 0x'+s.toString(16)+'-0x'+(e-1).toString(16)+(d.group>1?' ('+d.group+' pageblocks)':'')+'\n'+NAMES[d.mt[hit]]+
   '\nfree '+d.free[hit]+'  anon '+d.anon[hit]+'  file '+d.file[hit]+'\nkernel '+d.kernel[hit]+'  driver '+d.driver[hit]+'  hugetlb '+d.hugetlb[hit]+
   '\nreserved '+d.reserved[hit]+'  pinned '+d.pinned[hit]+'  hole '+d.hole[hit];
  tip.style.left=(ev.clientX+12)+'px';tip.style.top=(ev.clientY+12)+'px';tip.style.display='block';});
 cv.addEventListener('mouseleave',function(){tip.style.display='none';});
 // Self-check: hovering the first cell shows its pfns (read by the browser test).
 var f=pos.findIndex(function(p){return !!p;});
 if(f>=0){var b=cv.getBoundingClientRect();cv.dispatchEvent(new MouseEvent('mousemove',{clientX:b.left+pos[f][0]+1,clientY:b.top+pos[f][1]+1}));
  cv.setAttribute('data-hover',tip.textContent.indexOf('pfn 0x'+d.pfn[f].toString(16))==0?'ok':'fail');tip.style.display='none';}}
document.querySelectorAll('canvas.map').forEach(draw);
document.body.setAttribute('data-load-ms',Math.round(performance.now()));
document.body.setAttribute('data-ready','1');
})();
